"""Engines behind one contract (`adapters.contract.Engine`), picked by name from the registry."""
