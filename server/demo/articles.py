"""Help-center articles of the demo shop (Lumora): orders, shipping, returns, money, account.

Each entry is (article_id, title, tags, categories, body). Bodies are markdown with
`## ` headings; wrapped lines inside a paragraph are joined by `unwrap`. The terms
quoted here (30/60-day returns, EUR 150 automatic refunds, shipping costs...) are the
ones in the shop's policies (demo_guides.POLICIES); keep them in step.
"""

from __future__ import annotations

ArticleSpec = tuple[str, str, tuple[str, ...], tuple[str, ...], str]


def unwrap(body: str) -> str:
    """Join wrapped lines of each paragraph; headings and list items keep their own line."""
    blocks = []
    for block in body.strip().split("\n\n"):
        lines: list[str] = []
        for raw in block.strip().splitlines():
            line = raw.strip()
            starts_item = line.startswith(("## ", "- ")) or line[:2].rstrip(".").isdigit()
            if lines and not starts_item and not lines[-1].startswith("## "):
                lines[-1] += " " + line
            else:
                lines.append(line)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


ARTICLES: tuple[ArticleSpec, ...] = (
    (
        "kb-track-order",
        "How to track your order",
        ("orders", "tracking", "shipping"),
        (),
        """
## Where to find tracking
As soon as your parcel leaves our warehouse we send a shipping confirmation email with a
tracking link. You can also open My Account > Orders and select the order: the status and
the carrier's tracking number are shown at the top of the page.

## What the statuses mean
- Processing: we have your order and are picking and packing it.
- Shipped: the parcel is with the carrier; tracking updates can take up to 24 hours.
- Delivered: the carrier has confirmed delivery.

## Tracking has not moved
Carriers scan parcels at depots, so a gap of one or two days is normal. If tracking has not
changed for five business days, contact us with your order number and we will open an
investigation with the carrier.
""",
    ),
    (
        "kb-shipping-options",
        "Shipping options and costs",
        ("shipping", "delivery", "costs", "destinations"),
        (),
        """
## Standard delivery
Standard delivery takes 3 to 5 business days and costs EUR 4.95. Orders of EUR 49 or more
ship free of charge.

## Express delivery
Express delivery arrives in 1 to 2 business days for EUR 9.95 when you order before 14:00
on a business day. Large items such as TVs and bicycles cannot ship express.

## VIP members
VIP members get free standard and express shipping on every order, whatever the amount.

## Where we ship
We ship to all EU countries, Switzerland, Norway and the United Kingdom. Delivery to
islands and remote areas can take two extra days.
""",
    ),
    (
        "kb-delivery-times",
        "When will my order arrive?",
        ("delivery", "shipping", "orders"),
        (),
        """
## Estimated delivery date
The estimated delivery date is shown at checkout and in your order confirmation. It
counts from the moment the order ships, which is usually the same or the next business day.

## Delays
Public holidays, peak seasons and bad weather can add one or two days. If your parcel is
more than five business days late, write to us and we will check with the carrier. If it
cannot be found we send a replacement or refund you in full.
""",
    ),
    (
        "kb-change-address",
        "Changing the delivery address",
        ("address", "orders", "shipping"),
        (),
        """
## Before the order ships
While an order is still processing you can change the delivery address under My Account >
Orders > Change address. The change is confirmed by email.

## After the order has shipped
Once the parcel is with the carrier we can no longer change the address. Many carriers let
you redirect the parcel to a neighbour, a pickup point or a new date from the tracking page.

## Saved addresses
To update the address used for future orders, go to My Account > Addresses and set a new
default address.
""",
    ),
    (
        "kb-missed-delivery",
        "Missed delivery and pickup points",
        ("delivery", "shipping"),
        (),
        """
## The carrier could not deliver
If nobody is home, the carrier leaves a card and tries again the next business day. After
two attempts the parcel goes to the nearest pickup point for seven days.

## Collecting from a pickup point
Bring the pickup code from the carrier's message and an ID. If the parcel is not collected
in time it comes back to us and we refund the order in full once it arrives.
""",
    ),
    (
        "kb-lost-parcel",
        "My parcel says delivered but I did not get it",
        ("delivery", "lost parcel"),
        (),
        """
## Check first
Look around the delivery spot, with neighbours and in the mailbox, and check whether
someone in your household accepted it. The carrier's proof of delivery often shows a photo
or a signature.

## Tell us within 7 days
If you still cannot find it, contact us within 7 days of the delivery date with your
order number. We open a claim with the carrier and send a replacement or a full refund
once the claim is confirmed, usually within 5 business days.
""",
    ),
    (
        "kb-cancel-order",
        "Cancelling an order",
        ("cancellation", "orders"),
        (),
        """
## While the order is processing
You can cancel free of charge while the status is Processing: open My Account > Orders,
select the order and choose Cancel order. The refund goes back to your original payment
method, usually within 3 business days.

## After it has shipped
Once the order has shipped it can no longer be cancelled. Accept the parcel and return it
within the return window instead, or refuse it at the door: refused parcels are refunded
once they are back in our warehouse.
""",
    ),
    (
        "kb-modify-order",
        "Adding or removing items from an order",
        ("orders", "change order"),
        (),
        """
## Changing items
We cannot add items to an order that has been placed. Place a second order instead; if both
are processing on the same day we often ship them together.

## Removing an item
To remove an item, cancel the order while it is processing and order again. If it has
already shipped, return the item you do not want within the return window.
""",
    ),
    (
        "kb-split-shipment",
        "Why did I receive only part of my order?",
        ("delivery", "orders"),
        (),
        """
## Split shipments
Items can ship from different warehouses, so one order sometimes arrives in two parcels.
Each parcel has its own tracking number in My Account > Orders.

## An item is really missing
If the order shows as fully delivered but an item is missing, contact us within 7 days with
the order number and the missing item. We send it again at no cost.
""",
    ),
    (
        "kb-how-to-return",
        "How to return an item",
        ("returns", "refunds"),
        (),
        """
## Start a return
Go to My Account > Orders, select the order and choose Return items. Select the items and a
reason. You receive a free return label by email; VIP members can also book a pickup.

## Pack and send
Pack the item securely, ideally in its original packaging with all accessories and manuals,
and drop the parcel at any post office or pickup point within 14 days of creating the return.

## Return window
Standard customers can return items within 30 days of delivery, VIP members within 60 days.
Opened hygiene products and consumables such as coffee, vitamins or razor blades cannot be
returned unless they are faulty.
""",
    ),
    (
        "kb-return-window",
        "How long do I have to return something?",
        ("returns", "vip"),
        (),
        """
## The return window
You have 30 days from the delivery date to start a return. VIP members have 60 days.
The date of delivery is shown in your order history.

## Faulty items
If an item is faulty, the return window does not limit you: it is covered by the legal
guarantee and the manufacturer's warranty. See our warranty article for how to claim.

## Gifts
Gift recipients can return items with the order number; the refund goes to the buyer.
""",
    ),
    (
        "kb-refund-timing",
        "When will I get my refund?",
        ("refunds", "returns", "payment"),
        (),
        """
## How long refunds take
We check returned items within 2 business days of receiving them and issue the refund
within 5 business days. Your bank or card issuer can take another 3 to 5 business days to
show it on your statement.

## Automatic refunds
Refunds up to EUR 150 are approved automatically as soon as the carrier scans your return.
Larger refunds are approved after our team has inspected the item.

## Where the money goes
Refunds always go back to the original payment method. Gift card payments are refunded to
a new gift card.
""",
    ),
    (
        "kb-refund-status",
        "Checking the status of a refund",
        ("refunds",),
        (),
        """
## Refund statuses
- Requested: we have registered your return.
- Approved: the refund is confirmed and being paid out.
- Refunded: the money has been sent to your payment method.
- Rejected: the return did not meet our conditions; the email explains why.

## Where to check
Open My Account > Returns to see each return and its refund status. If a refund has shown
Refunded for more than 5 business days and you cannot see it, contact your bank with the
reference in our email.
""",
    ),
    (
        "kb-damaged-item",
        "My item arrived damaged",
        ("damaged", "returns", "refunds"),
        (),
        """
## Report it within 7 days
If an item arrives damaged, report it within 7 days of delivery under My Account > Orders >
Report a problem, with a photo of the item and the packaging.

## What we do
We send a replacement or refund you in full, including shipping. For items under EUR 25 you
do not need to send anything back. For larger items we email a free return label.
""",
    ),
    (
        "kb-wrong-item",
        "I received the wrong item",
        ("wrong item", "returns"),
        (),
        """
## Let us know
Contact us within 14 days with your order number and a photo of the item you received.
We ship the correct item straight away, before the wrong one is back.

## Sending the wrong item back
Use the free return label we send you. Please return the wrong item within 14 days; if it
does not arrive we may charge it to your payment method.
""",
    ),
    (
        "kb-return-electronics",
        "Returning electronics",
        ("returns", "electronics"),
        ("Electronics", "Computers"),
        """
## Condition
Phones, laptops, TVs and other electronics can be returned within the normal return window
if they are complete: the device, charger, cables, manuals and original box. Reset the
device to factory settings and remove your accounts before you send it.

## Opened software and accessories
Sealed software and hygiene accessories such as in-ear tips cannot be returned once opened.

## Damage
Devices with scratches, dents or water damage that were not there on delivery are refunded
minus the loss of value, or sent back to you if you prefer.
""",
    ),
    (
        "kb-exchange",
        "Exchanging an item",
        ("returns", "exchange"),
        (),
        """
## How exchanges work
We do not swap items directly. Return the item you do not want and place a new order for
the one you do; this way the new item ships immediately, without waiting for the return.

## Price difference
You pay the current price of the new item and receive a full refund for the returned one
once it is back with us.
""",
    ),
    (
        "kb-return-shipping-cost",
        "Do I pay for return shipping?",
        ("returns", "shipping", "costs"),
        (),
        """
## Free returns
Returns within the return window are free: use the label we email when you start the
return.

## When costs apply
If you send a return without our label, or from outside the EU, we cannot refund the
shipping cost you paid. Returns of bulky items are collected by a freight carrier free of
charge; book the pickup in your return.
""",
    ),
    (
        "kb-warranty-claim",
        "Making a warranty claim",
        ("warranty", "repair"),
        (),
        """
## Who is covered
Most electronics and appliances come with a 24-month manufacturer warranty from the
delivery date. Your warranties are listed in My Account > Warranties.

## How to claim
Open the warranty, choose Make a claim and describe the fault. Add a photo or video if
you can. We reply within 5 business days with a repair, a replacement or a refund.

## What is not covered
Accidental damage, water damage, normal wear of batteries and consumables, and damage from
unauthorised repairs are not covered.
""",
    ),
    (
        "kb-extended-warranty",
        "Extended warranty",
        ("warranty", "extended warranty"),
        ("Electronics", "Computers", "Home & Kitchen"),
        """
## What it adds
The Lumora extended warranty adds 24 months to the manufacturer warranty on electronics,
computers and home appliances. It covers the same faults as the manufacturer warranty.

## How to buy it
You can add it at checkout or within 30 days of delivery from My Account > Warranties.

## Claims
Claims under the extended warranty work exactly like manufacturer claims; we handle them
for you and there is no excess to pay.
""",
    ),
    (
        "kb-repair-or-replace",
        "Repair, replacement or refund?",
        ("warranty", "repair"),
        (),
        """
## How we decide
For a confirmed fault we first try a repair. If the repair is not possible, would take
longer than 15 business days, or the same fault comes back, we replace the item.

## Refunds under warranty
If no replacement is available, we refund the purchase price. In the second year of the
warranty the refund can be reduced for the use you had of the item.
""",
    ),
    (
        "kb-payment-methods",
        "Payment methods we accept",
        ("payment",),
        (),
        """
## Accepted methods
We accept Visa, Mastercard, American Express, PayPal, Apple Pay, Google Pay, SEPA direct
debit and Lumora gift cards. Business customers can also pay by invoice.

## Security
Card payments are protected with 3-D Secure. We never store your full card number.
""",
    ),
    (
        "kb-payment-failed",
        "My payment failed",
        ("payment", "payment issue"),
        (),
        """
## Common causes
A payment can fail because of a typo in the card details, an expired card, a daily limit
set by your bank, or a 3-D Secure check that was not completed in time.

## What to do
Check the card details and try again, or choose another payment method. Your order is not
placed until the payment succeeds, so you will not be charged twice. If your bank shows a
pending charge for a failed payment, it disappears within 7 days.
""",
    ),
    (
        "kb-double-charge",
        "I was charged twice",
        ("payment", "billing"),
        (),
        """
## Pending authorisations
When a payment is retried, your bank can show the first attempt as pending. Pending amounts
are released automatically within 7 days and never become a real charge.

## Two real charges
If two identical charges have been booked, send us both transaction references. We refund
the duplicate within 5 business days.
""",
    ),
    (
        "kb-invoices",
        "Getting an invoice",
        ("invoice", "billing"),
        (),
        """
## Download your invoice
Every order has a PDF invoice under My Account > Orders > Invoice, available as soon as the
order has shipped.

## Business invoices
Business customers can add a company name and VAT number under My Account > Business
details; invoices issued after that show them. We cannot change invoices that were already
issued, but we can issue a corrected invoice on request.
""",
    ),
    (
        "kb-price-match",
        "Price match promise",
        ("price match", "pricing"),
        (),
        """
## How it works
If you find the same item cheaper at a major EU retailer within 14 days of your purchase,
we refund the difference. The item must be new, identical and in stock at the other retailer.

## How to ask
Send us your order number and a link to the other offer. Marketplace sellers, clearance
sales and membership-only prices are excluded.
""",
    ),
    (
        "kb-promo-codes",
        "Using promo codes",
        ("promo code", "discount"),
        (),
        """
## Applying a code
Enter the code in the Promo code field at checkout and select Apply. The discount shows
before you pay.

## Why a code does not work
Codes can expire, have a minimum order value, or exclude some brands. Only one code can be
used per order. A code cannot be added to an order after it has been placed.
""",
    ),
    (
        "kb-gift-cards",
        "Gift cards",
        ("gift card", "payment"),
        (),
        """
## Buying and using gift cards
Gift cards are available from EUR 10 to EUR 500 and are valid for 3 years. Enter the code
at checkout; any remaining balance stays on the card.

## Lost codes
Gift cards cannot be replaced if the code is lost, so keep the email safe.
""",
    ),
    (
        "kb-account-access",
        "I cannot sign in",
        ("account", "password", "login"),
        (),
        """
## Reset your password
Choose Forgot password on the sign-in page and enter your email address. The reset link is
valid for 60 minutes; check your spam folder if it does not arrive.

## Locked account
After five failed attempts your account is locked for 30 minutes to protect it. Wait and
try again, or reset your password.

## Email address no longer works
If you cannot access the email address on your account, contact us from a new address with
a recent order number so we can verify you.
""",
    ),
    (
        "kb-two-factor",
        "Two-step verification",
        ("account", "security"),
        (),
        """
## Turning it on
Go to My Account > Security and enable two-step verification with an authenticator app.

## Lost phone
If you lose access to your authenticator, use one of your backup codes. Without a backup
code, contact us: after verifying your identity we reset two-step verification within 2
business days.
""",
    ),
    (
        "kb-change-email",
        "Changing your email or phone number",
        ("account", "profile"),
        (),
        """
## Update your details
Change your email address, phone number or name under My Account > Profile. A new email
address must be confirmed with the link we send to it.

## Orders already placed
Changes apply to future emails. Orders already placed keep the details used at checkout.
""",
    ),
    (
        "kb-delete-account",
        "Deleting your account and your data",
        ("account", "privacy"),
        (),
        """
## Delete your account
Choose Delete account under My Account > Privacy. Open orders and returns must be completed
first.

## What we keep
We delete your profile and preferences within 30 days. Invoices are kept for 10 years
because tax law requires it. You can also download a copy of your data before deleting.
""",
    ),
    (
        "kb-newsletter",
        "Newsletter and email preferences",
        ("newsletter", "account"),
        (),
        """
## Subscribing and unsubscribing
Manage marketing emails under My Account > Communication, or use the unsubscribe link at
the bottom of any newsletter. Service emails about your orders are always sent.
""",
    ),
    (
        "kb-auto-ship",
        "Auto-ship: repeat deliveries",
        ("subscription", "auto-ship", "orders"),
        (),
        """
## Setting up auto-ship
Products you re-buy regularly, such as coffee, filters, razor blades, vitamins and pet food,
can be delivered automatically. Choose Auto-ship on the product page and pick how often:
every 2 to 12 weeks.

## Changing, skipping or cancelling
Under My Account > Auto-ship you can change the frequency or the next date, skip or pause a
delivery, or cancel, at any time up to 2 days before the next shipment. Each delivery is
charged at the price of the day it ships, to the payment method saved for auto-ship.
""",
    ),
    (
        "kb-vip",
        "The Lumora VIP programme",
        ("vip", "membership"),
        (),
        """
## Benefits
VIP members enjoy a 60-day return window, free standard and express shipping, pickup of
returns from home and priority support.

## How to become VIP
Customers who spend more than EUR 1,500 in 12 months are invited automatically. Membership
is reviewed once a year.
""",
    ),
    (
        "kb-business",
        "Business accounts",
        ("b2b", "business", "invoice"),
        (),
        """
## What business accounts offer
Business accounts can pay by invoice with 30-day terms, add several users and download
monthly statements. Prices are shown without VAT once a valid VAT number is added.

## Returns for businesses
Business orders follow the standard 30-day return window. Consumables in bulk packs cannot
be returned once opened.
""",
    ),
    (
        "kb-contact",
        "Contacting customer service",
        ("contact", "support"),
        (),
        """
## Chat and email
Our assistant answers around the clock in chat. Our team is available Monday to Saturday,
8:00 to 20:00 CET, by chat and by email; we reply to emails within one business day.

## Have this ready
Your order number and the email address of your account help us find your order quickly.
""",
    ),
)
