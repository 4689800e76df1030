"""Credit-limit decisions: the policy file, the engine, its inputs, the backtest and the report."""
