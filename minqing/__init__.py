"""The ``minqing`` command and the composition of the whole system."""
