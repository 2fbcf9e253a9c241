//! TODO-module: filled in by its issue.
