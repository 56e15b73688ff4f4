"""Exchange adapters: each turns an exchange's wire format into `Tick`s, nothing else leaks out."""
