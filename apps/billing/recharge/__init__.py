"""Auto-recharge: a company balance topped up from a saved card, a SIP profile balance from the
company balance."""
