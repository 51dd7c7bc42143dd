# The platform team's modules: every product loads them as @platform//.
module(name = "platform")
