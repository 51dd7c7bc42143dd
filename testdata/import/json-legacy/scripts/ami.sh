#!/bin/sh
echo ami
