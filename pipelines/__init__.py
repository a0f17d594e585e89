"""DVC stage entry points, the traffic driver and the `routeiq` CLI; nothing below imports this package."""
