"""The public, branded payment page of an invoice (``/pay/{invoiceId}``)."""
