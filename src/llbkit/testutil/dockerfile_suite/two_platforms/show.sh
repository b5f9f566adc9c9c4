#!/bin/sh
cat /platform.txt
