"""Product care guides and the machine-readable policies of the demo shop (Lumora).

Guides are help articles tied to catalog categories (the generator links them to
products of those categories). Policies carry `params`, the terms that facts and
governance compute with; the prose in demo_articles.py quotes the same numbers.
"""

from __future__ import annotations

from server.demo.articles import ArticleSpec

PolicySpec = tuple[str, str, str, dict[str, float | int | str | bool], str]

GUIDES: tuple[ArticleSpec, ...] = (
    (
        "guide-phone-care",
        "Looking after your smartphone",
        ("care", "phone", "battery"),
        ("Electronics/Phones",),
        """
## Battery
Lithium batteries last longest between 20% and 80%. Avoid leaving the phone in a hot car
and use the brand's charger or a certified USB-C charger.

## Screen and case
A tempered glass protector and a case made for your exact model prevent most cracked
screens. Generic cases can block the camera or the buttons, so pick the one for your model.

## Water
Water resistance weakens over time and is not covered by the warranty. Dry the phone and
wait before charging if it gets wet.
""",
    ),
    (
        "guide-laptop-care",
        "Laptop care and setup",
        ("care", "laptop"),
        ("Computers/Laptops",),
        """
## First start
Charge the laptop fully, install system updates and create a recovery drive.

## Everyday care
Carry it in a padded sleeve of the right size, keep the vents free and clean the keyboard
with compressed air. A wireless mouse and a USB-C dock make desk work much easier.

## Battery health
If you work plugged in most of the day, turn on the battery-care mode in the settings to
limit charging to 80%.
""",
    ),
    (
        "guide-tv-setup",
        "Setting up your TV",
        ("care", "tv", "setup"),
        ("Electronics/TV",),
        """
## Mounting
Check the VESA pattern and weight on the back of the TV before choosing a wall mount, and
fix the mount into solid wall, never into plasterboard alone.

## Picture and sound
Use an HDMI 2.1 cable for games consoles and 4K players. A soundbar gives clearer dialogue
than the built-in speakers.
""",
    ),
    (
        "guide-descaling",
        "Descaling your coffee machine",
        ("care", "coffee", "descaling"),
        ("Home & Kitchen/Coffee Machines", "Home & Kitchen/Coffee"),
        """
## How often
Descale every 2 to 3 months, or when the machine asks for it. Hard water needs more frequent
descaling. Damage caused by limescale is not covered by the warranty.

## How to descale
Empty the drip tray, fill the tank with the descaler and water as printed on the bottle,
start the descaling programme and rinse twice with clean water afterwards. Use the descaler
made for your machine's brand.
""",
    ),
    (
        "guide-coffee-beans",
        "Choosing coffee beans and capsules",
        ("coffee", "beans", "capsules"),
        ("Grocery/Coffee",),
        """
## Beans for bean-to-cup machines
Medium roasts like Crema Dolce give a rounder cup in automatic machines; dark roasts like
Espresso Classico suit milk drinks. Oily, very dark beans can clog the grinder.

## Capsules
Caffia capsules only fit Caffia capsule machines. Other capsule systems will not pierce
correctly and can damage the machine.

## Freshness
Store beans airtight, away from light, and use them within three to four weeks of opening.
Most customers reorder every three weeks.
""",
    ),
    (
        "guide-printer-ink",
        "Printer ink and print quality",
        ("printer", "ink"),
        ("Office/Printers", "Office/Ink & Toner"),
        """
## The right cartridge
Each printer model uses its own cartridges; the model name is printed on the cartridge and
inside the printer lid. Original cartridges keep the print head warranty valid.

## Streaks and faded prints
Run the cleaning cycle from the printer menu, then print a nozzle check. Print at least one
page a week so the ink does not dry in the nozzles.
""",
    ),
    (
        "guide-vacuum",
        "Vacuum cleaner maintenance",
        ("care", "vacuum", "filters"),
        ("Home & Kitchen/Vacuums",),
        """
## Filters
Wash the pre-filter monthly and replace the HEPA filter about every two months. A clogged
filter reduces suction and makes the motor run hot.

## Bags and bins
Change the dust bag when the indicator shows full, and empty bagless bins after each use.
Check the brush roll for hair regularly.
""",
    ),
    (
        "guide-water-filter",
        "Water filter jug: changing the cartridge",
        ("care", "water filter"),
        ("Home & Kitchen/Water Filters",),
        """
## When to change
Change the cartridge every 4 weeks, or sooner with very hard water. The lid indicator counts
the days for you.

## Preparing a new cartridge
Soak the new cartridge for 5 minutes, fit it firmly and discard the first two jugs of water.
""",
    ),
    (
        "guide-shaving",
        "Shaving: blades and shaver care",
        ("care", "shaving", "razor"),
        ("Personal Care/Shaving",),
        """
## Razor blades
Replace blades after 5 to 10 shaves, or as soon as they pull. Blades fit all handles of the
same brand only.

## Electric shavers
Clean the shaver after each use and replace the cleaning cartridge every 2 months. Replace
foils and cutters every 18 months for a close shave.

## Returns
For hygiene reasons opened razors, blades and shaver heads cannot be returned unless faulty.
""",
    ),
    (
        "guide-oral-care",
        "Electric toothbrush care",
        ("care", "toothbrush"),
        ("Personal Care/Oral Care",),
        """
## Brush heads
Replace the brush head every three months, or earlier when the bristles splay.

## Battery
Let the battery run down completely once a month to keep its capacity.
""",
    ),
    (
        "guide-vitamins",
        "Taking and storing vitamins",
        ("vitamins", "health"),
        ("Health/Vitamins",),
        """
## Storage
Keep vitamins in a cool, dry place and close the bottle tightly. A weekly pill organizer
makes a daily routine easier.

## Advice
Our vitamins are food supplements, not medicines. Ask your doctor or pharmacist before
combining supplements or if you are pregnant. Opened supplements cannot be returned.
""",
    ),
    (
        "guide-fitness-tracker",
        "Fitness tracker: straps and charging",
        ("wearables", "care"),
        ("Health/Wearables",),
        """
## Charging
Use the charging cable made for your tracker model; cables of other models do not fit.

## Straps
Sport straps are made for the exact model and can be swapped without tools. Rinse the strap
with clear water after workouts.
""",
    ),
    (
        "guide-pet-food",
        "Switching your pet's food",
        ("pets", "food"),
        ("Pet Supplies/Dog", "Pet Supplies/Cat"),
        """
## Change gradually
Mix the new food with the old one over 7 days, increasing the new food each day, to avoid
an upset stomach.

## How much
Follow the feeding table on the bag for your pet's weight. A 12 kg bag lasts a medium dog
about a month. Opened food cannot be returned, but unopened bags can within the window.
""",
    ),
    (
        "guide-running-shoes",
        "Running shoes: fit and care",
        ("running", "shoes", "care"),
        ("Sports/Running",),
        """
## Fit
Leave a thumb's width in front of the longest toe. Try shoes in the afternoon, when feet are
largest. Unworn shoes can be exchanged by returning them within the window.

## Care
Air-dry shoes away from heaters and replace them after about 800 km.
""",
    ),
    (
        "guide-bike",
        "Bicycle care and safety",
        ("cycling", "bike", "care"),
        ("Sports/Cycling",),
        """
## First ride
Have the bike checked after the first 200 km: cables stretch and need adjusting. This check
is part of the warranty conditions.

## Regular care
Keep the tyres at the pressure printed on the sidewall, clean and oil the chain monthly, and
carry a spare inner tube. Wear a helmet and use lights after dark.
""",
    ),
    (
        "guide-lawn-mower",
        "Lawn mower care",
        ("garden", "mower", "care"),
        ("Garden/Lawn Mowers", "Garden/Lawn"),
        """
## Blades
A sharp blade cuts cleanly and keeps the lawn healthy. Replace the blade every season or
when the cut looks frayed; use the blade made for your mower model.

## Battery and storage
Store the battery indoors over winter at about half charge. Clean grass from the deck after
each use.
""",
    ),
)

POLICIES: tuple[PolicySpec, ...] = (
    (
        "pol-returns",
        "Return policy",
        "*",
        {
            "return_window_days": 30,
            "vip_return_window_days": 60,
            "return_label_free": True,
            "opened_consumables_returnable": False,
        },
        """
Items can be returned within 30 days of delivery; VIP customers have 60 days. Returns are
free with the label we provide. Items must be unused and complete. Opened consumables and
hygiene products (coffee, food, supplements, razor blades, brush heads) cannot be returned
unless they are faulty. Faulty items are covered by warranty beyond the return window.
""",
    ),
    (
        "pol-refunds",
        "Refund policy",
        "*",
        {
            "refund_auto_limit": 150.0,
            "refund_processing_days": 5,
            "refund_to_original_method": True,
            "currency": "EUR",
        },
        """
Refunds go to the original payment method within 5 business days after the returned item is
received. Refunds up to EUR 150 are approved automatically when the return is scanned by the
carrier; larger refunds are approved by an agent after inspection.
""",
    ),
    (
        "pol-electronics",
        "Electronics return conditions",
        "Electronics",
        {
            "requires_original_packaging": True,
            "requires_all_accessories": True,
            "factory_reset_required": True,
            "restocking_fee_pct": 0,
        },
        """
Electronics may be returned within the normal return window if complete with all
accessories, manuals and the original packaging, reset to factory settings. Devices with
damage that was not present on delivery are refunded minus the loss of value. There is no
restocking fee.
""",
    ),
    (
        "pol-computers",
        "Computer return conditions",
        "Computers",
        {
            "requires_original_packaging": True,
            "requires_all_accessories": True,
            "factory_reset_required": True,
            "restocking_fee_pct": 0,
        },
        """
Computers and accessories follow the electronics conditions: complete, in the original
packaging and reset to factory settings, within the normal return window.
""",
    ),
    (
        "pol-warranty",
        "Warranty terms",
        "*",
        {
            "manufacturer_warranty_months": 24,
            "extended_warranty_extra_months": 24,
            "claim_response_days": 5,
            "repair_max_days": 15,
        },
        """
Products with a manufacturer warranty are covered for the stated months from delivery,
usually 24. The extended warranty adds 24 months. Claims are answered within 5 business
days; we repair first and replace when a repair is impossible or takes more than 15 business
days. Accidental damage, water damage and wear of consumables are not covered.
""",
    ),
    (
        "pol-shipping",
        "Shipping policy",
        "*",
        {
            "standard_cost": 4.95,
            "free_shipping_threshold": 49.0,
            "standard_days_min": 3,
            "standard_days_max": 5,
            "express_cost": 9.95,
            "express_days_max": 2,
            "vip_free_shipping": True,
        },
        """
Standard delivery takes 3 to 5 business days and costs EUR 4.95, free from EUR 49. Express
delivery takes 1 to 2 business days for EUR 9.95. VIP customers ship free. Parcels more than
5 business days late are investigated with the carrier and replaced or refunded.
""",
    ),
    (
        "pol-damaged",
        "Damaged, missing and wrong items",
        "*",
        {
            "damage_report_days": 7,
            "no_return_needed_below": 25.0,
            "wrong_item_report_days": 14,
        },
        """
Damaged or missing items must be reported within 7 days of delivery, wrong items within 14
days. We replace or refund in full; items under EUR 25 do not need to be sent back.
""",
    ),
    (
        "pol-price-match",
        "Price match",
        "*",
        {"price_match_days": 14},
        """
If the identical new item is cheaper at a major EU retailer within 14 days of purchase, we
refund the difference. Marketplace, clearance and membership prices are excluded.
""",
    ),
    (
        "pol-cancellation",
        "Order cancellation",
        "*",
        {
            "cancellable_statuses": "processing",
            "cancellation_fee": 0.0,
        },
        """
Orders can be cancelled free of charge while they are processing. Shipped orders cannot be
cancelled; return or refuse them instead and they are refunded once back in the warehouse.
""",
    ),
    (
        "pol-b2b",
        "Business customer terms",
        "*",
        {
            "invoice_payment_terms_days": 30,
            "b2b_return_window_days": 30,
        },
        """
Business customers may pay by invoice within 30 days. Business orders follow the 30-day
return window; opened bulk consumables cannot be returned.
""",
    ),
)
