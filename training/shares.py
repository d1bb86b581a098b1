"""The new surface's share of an adaptation's training crops (the rest from the base datasets).

Plain Python, no torch: the web process reads these for the adapt form.
"""

BALANCED_SHARE = 0.5  # the default: forgets least of the other surfaces
# "these tunnels first": higher on the new surface's left-out images, forgets more of the base
TUNNELS_FIRST_SHARE = 0.75
