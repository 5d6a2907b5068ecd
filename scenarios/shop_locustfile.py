# Placeholder so the shipped scenarios validate (a scenario's locustfile must exist).
# The shop's Locust users (ShopUser and friends) are written here by the load-engine work.
