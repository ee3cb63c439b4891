"""Buying company credit: card and PayPal through Stripe, bank wires, saved cards, refunds, the
Stripe webhook inbox and client, receipts."""
