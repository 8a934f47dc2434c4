-- Intake owns a second stream category: qrscans-<district>.<station>, the daily totals
-- of each station's QR page views and the opinions submitted from it (QrScansRecorded).
-- The same map as contracts.topics.SERVICE_BY_CATEGORY (a test keeps them equal).
INSERT INTO eventstore.authors (role_name, category) VALUES ('minqing_intake', 'qrscans')
ON CONFLICT DO NOTHING;
