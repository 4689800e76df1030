"""Portfolio monitoring: the monitoring config, drift and migration, alerts, matured-cohort backtests, the daily summary and the reports."""
