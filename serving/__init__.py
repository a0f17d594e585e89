"""The gateway server and the replay provider: everything that answers HTTP."""
