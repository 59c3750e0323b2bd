"""vs_bringup: the product layer — launch logic, run recording (MCAP), run reports and the demo."""
