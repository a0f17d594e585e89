"""The gateway's endpoints, one module each."""
