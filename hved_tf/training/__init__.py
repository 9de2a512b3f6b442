"""Training: the train app (`app`), its flags (`flags`), callbacks (`callbacks`) and the
distribution strategy (`distribute`)."""
