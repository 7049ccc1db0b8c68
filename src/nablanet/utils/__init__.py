"""Small helpers shared by several concerns (data files, saved models, run directories)."""
from .atomic import atomic_path, atomic_write_bytes

__all__ = ["atomic_path", "atomic_write_bytes"]
