"""cnilab: reproduce and extend the Qi/Kulkarni/Ramakrishnan CNI plugin study."""

__version__ = "0.1.0"
