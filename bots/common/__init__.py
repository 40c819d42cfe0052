"""What every adapter shares: the central error handler and text helpers."""
