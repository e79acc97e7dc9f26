<?php
// This file is part of CAIPI's Moodle block (block_caipi).
//
// This program is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// This program is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with this program.  If not, see <http://www.gnu.org/licenses/>.

/**
 * English strings of the CAIPI block.
 *
 * @package    block_caipi
 * @copyright  2026 CAIPI
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['blocktitle'] = 'Block title';
$string['caipi:addinstance'] = 'Add a new CAIPI block';
$string['caipi:myaddinstance'] = 'Add a new CAIPI block to the Dashboard';
$string['caipiurl'] = 'CAIPI address';
$string['caipiurl_desc'] = 'The address of the CAIPI site (its SITE_URL, e.g. https://caipi.uni.example). External tools whose tool URL starts with it are CAIPI. Empty: tools whose name starts with "CAIPI".';
$string['closedrawer'] = 'Close';
$string['defaultheight'] = 'Default height';
$string['defaultheight_desc'] = 'Height of the CAIPI frame in the block, in pixels, unless the block sets its own.';
$string['drawer'] = 'Offer to open CAIPI in a drawer';
$string['firstactivity'] = 'The first CAIPI activity of the course';
$string['frametitle'] = 'CAIPI: {$a}';
$string['height'] = 'Height in pixels';
$string['noactivity'] = 'This course has no CAIPI activity yet. Add one (Add an activity or resource › CAIPI, then choose what it opens, e.g. the course assistant), then pick it in this block\'s settings.';
$string['notavailable'] = 'CAIPI is not set up for this course yet.';
$string['notregistered'] = 'CAIPI is not registered in this Moodle. Ask your Moodle administrator to register it (Site administration › Plugins › Activity modules › External tool › Manage tools, with the registration URL from CAIPI) or to set the CAIPI address in this block\'s site settings.';
$string['opendrawer'] = 'Open in a drawer';
$string['pluginname'] = 'CAIPI';
$string['privacy:metadata'] = 'The CAIPI block stores no personal data. It shows the launch of a CAIPI External tool activity; what that launch sends to CAIPI is described by the External tool plugin.';
$string['target'] = 'What the block shows';
$string['target_help'] = 'A CAIPI activity of this course: the course assistant or a published prompt, as chosen when the activity was added.';
