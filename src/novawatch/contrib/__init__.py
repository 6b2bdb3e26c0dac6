"""Ready-made hooks a deployer can register through entry points."""
