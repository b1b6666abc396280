"""TokenTree: text generation as a game tree, as a Gymnasium environment."""
