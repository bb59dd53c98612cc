"""lutc: compile low-bit-weight networks to C whose GEMMs are table lookups."""

__version__ = "0.1.0"
