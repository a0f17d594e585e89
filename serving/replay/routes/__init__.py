"""The replay provider's endpoints, one module each; the app includes their routers."""
