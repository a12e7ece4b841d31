"""Each chapter's figures, one module per chapter; they import chapters, never the reverse."""
