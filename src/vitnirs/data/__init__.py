"""Data layer: CSV banks, the embedded demo bank, synthetic spectra and the prepared store."""
