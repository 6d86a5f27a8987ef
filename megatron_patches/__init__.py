"""Named, versioned patches that let megatron-core run on the shim (see issue 6)."""
