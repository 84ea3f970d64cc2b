//! Store methods for the cards ops module (in progress).
