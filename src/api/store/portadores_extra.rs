//! Store methods for the portadores extra module (in progress).
