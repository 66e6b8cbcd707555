"""What the service keeps: the config (loaded, last good, reloaded), the shared store, RQ jobs, the recordings found."""
