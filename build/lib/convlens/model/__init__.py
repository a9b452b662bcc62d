"""The convlens network, its data and its training: knows torch, never HTTP."""
