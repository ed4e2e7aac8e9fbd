"""The built-in model plugins (DF-GAN, RAT-GAN, ...), registered through the `t2igan` entry points."""
