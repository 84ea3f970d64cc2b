//! Store methods for accounts and embosser records (in progress).
