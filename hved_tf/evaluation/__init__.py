"""Evaluation: metrics (`metrics`), tables (`tables`) and the evaluate app (`app`)."""
