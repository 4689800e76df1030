"""PD models: fitting (scorecard, LightGBM), calibration, validation, reason codes, scoring, the promotion gate and their plots."""
