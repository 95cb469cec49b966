"""Pure neural network modules and the checkpoint format."""
