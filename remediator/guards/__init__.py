"""Safety guards: what may stop automation from acting, and why."""
