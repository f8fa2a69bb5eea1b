"""vitnirs: a universal encoder for near-infrared spectra.

Any spectrum goes in as (wavelength, value) tokens; a fixed-size embedding comes out.
This package holds the data layer (CSV banks, the embedded demo bank, nirs4all synthetic
spectra, the prepared store), the configuration and the command line.
"""

__version__ = "0.1.0"
