"""The fixed sentence sets that check an int8 encoder against its float32 original.

Varied shop sentences (short and long, typos, order numbers, product names) that are
chosen to span the domain; nothing is fitted on them, so overlap with training files is harmless.
``PROBE_SENTENCES`` gates the build. One- and two-word inputs are kept apart in
``SHORT_PROBES`` and only reported: with three tokens in the batch, per-tensor dynamic
activation scales are set by MiniLM's few outlier dimensions, and their cosine sits
around 0.95-0.97 even per-channel, while carrying little intent to lose.
"""

from __future__ import annotations

PROBE_SENTENCES: tuple[str, ...] = (
    "where is my order A10023?",
    "I want to cancel order #458812 before it ships",
    "can i change the size on my order to a medium",
    "how do I return the running shoes I bought last week",
    "my refund still hasn't shown up on my card after 10 days",
    "the ceramic vase arrived smashed into pieces",
    "you sent me a blue hoodie but I ordered the green one",
    "tracking says delivered but there is no package anywhere",
    "my coffee grinder stopped working after 4 months, is it under warranty?",
    "please update my shipping address to 12 Elm Street, Springfield",
    "do you offer next day delivery",
    "how much is shipping to Canada",
    "my payment keeps getting declined at checkout",
    "can I get an invoice with my company VAT number",
    "I can't log in, the password reset email never arrives",
    "delete my account and all my data",
    "is the Nordic wool blanket machine washable?",
    "when will the trail backpack 30L be back in stock",
    "the promo code SPRING20 says it's invalid",
    "this is the worst service I've ever had",
    "let me talk to a real person please",
    "thanks so much, the lamp is gorgeous!",
    "I'd like to order the same tea set again",
    "unsubscribe me from your emails",
    "is this jacket true to size",
    "my parcel went to the wrong house",
    "whats the status of my pakage",
    "cancle my order pls",
    "I ordered three items and only two came in the box, order 77812",
    "Could you kindly confirm whether the stainless steel kettle works on induction hobs?",
    "The delivery driver left my parcel in the rain and the box is soaked through.",
    "I have been waiting for over three weeks for a refund on a jacket I returned and "
    "nobody answers my emails, this is unacceptable.",
    "can u send the receipt again",
    "Do you ship to PO boxes?",
    "my discount wasn't applied to the sale items",
    "I was charged twice for the same order",
    "Is there a warranty on refurbished headphones?",
    "how long do I have to send something back",
    "change delivery to pickup point",
    "the zipper on the new suitcase broke on the first trip",
    "Bonjour, do you have a French customer service?",
    "what are your opening hours for phone support",
    "I'd love to leave a review for the linen sheets",
    "add gift wrapping to order B-2231",
    "my account got locked after too many attempts",
    "size guide for the merino sweater?",
    "why was my order split into two shipments",
    "the app crashes when I try to pay with PayPal",
    "please sign me up for the newsletter",
    "I never received the confirmation email for order 990134",
)

SHORT_PROBES: tuple[str, ...] = ("hi", "ok", "thanks", "help", "refund?", "hello there")
