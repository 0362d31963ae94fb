"""The training sandbox: a built-in local network where new staff practise drafting, approval
and publishing without risk. It is a training feature, not a stand-in for the real connectors:
everything it shows is labelled *Sandbox*."""
