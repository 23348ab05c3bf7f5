"""Who calls kinline and what they may touch: subjects, bindings, tokens,
sign-in, and the one access policy."""
