"""The notification service (通知): every step reaches the people it concerns."""
