//! Store methods for the portadores module (in progress).
