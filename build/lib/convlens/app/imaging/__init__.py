"""Pictures in and out: uploads made to look like MNIST, feature maps drawn as PNGs."""
