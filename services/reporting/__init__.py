"""The reporting service (统计报表): the three rates, representatives' archives, station
assessments, hot spots, dashboards and the monthly report, all folded from the event
store and rebuilt from it. Its design: ``docs/reporting.md``; its formulas:
``docs/metrics.md``."""
