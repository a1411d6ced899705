"""Message contracts shared by every Tocsin service: the only place they are defined."""
