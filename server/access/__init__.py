"""Who is calling and what they may do: credentials, roles, rate limits.

Protocol-neutral: the gRPC interceptor (server/api/auth.py) reads metadata and the TLS
peer, and hands them here; nothing in this package imports grpc.
"""
