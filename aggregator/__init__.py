"""backchannel: everything that is not HTTP."""
