//! Store methods for the mass module (in progress).
