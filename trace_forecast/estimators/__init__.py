"""sktime estimators: thin adapters from pandas to the core engine."""
