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
 * German strings of the CAIPI block.
 *
 * @package    block_caipi
 * @copyright  2026 CAIPI
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['blocktitle'] = 'Blocktitel';
$string['caipi:addinstance'] = 'CAIPI-Block hinzufügen';
$string['caipi:myaddinstance'] = 'CAIPI-Block zum Dashboard hinzufügen';
$string['caipiurl'] = 'CAIPI-Adresse';
$string['caipiurl_desc'] = 'Die Adresse der CAIPI-Installation (ihre SITE_URL, z. B. https://caipi.uni.example). Externe Tools, deren Tool-URL damit beginnt, gelten als CAIPI. Leer: Tools, deren Name mit „CAIPI“ beginnt.';
$string['closedrawer'] = 'Schließen';
$string['defaultheight'] = 'Standardhöhe';
$string['defaultheight_desc'] = 'Höhe des CAIPI-Rahmens im Block in Pixeln, sofern der Block keine eigene festlegt.';
$string['drawer'] = 'Öffnen in einer Seitenleiste anbieten';
$string['firstactivity'] = 'Die erste CAIPI-Aktivität des Kurses';
$string['frametitle'] = 'CAIPI: {$a}';
$string['height'] = 'Höhe in Pixeln';
$string['noactivity'] = 'Dieser Kurs hat noch keine CAIPI-Aktivität. Fügen Sie eine hinzu (Aktivität oder Material anlegen › CAIPI, dann wählen, was sie öffnet, z. B. den Kursassistenten) und wählen Sie sie in den Einstellungen dieses Blocks.';
$string['notavailable'] = 'CAIPI ist für diesen Kurs noch nicht eingerichtet.';
$string['notregistered'] = 'CAIPI ist in diesem Moodle nicht registriert. Bitten Sie Ihre Moodle-Administration, es zu registrieren (Website-Administration › Plugins › Aktivitäten › Externes Tool › Tools verwalten, mit der Registrierungs-URL aus CAIPI) oder die CAIPI-Adresse in den Website-Einstellungen dieses Blocks einzutragen.';
$string['opendrawer'] = 'In einer Seitenleiste öffnen';
$string['pluginname'] = 'CAIPI';
$string['privacy:metadata'] = 'Der CAIPI-Block speichert keine personenbezogenen Daten. Er zeigt den Start einer CAIPI-Aktivität (Externes Tool); was dieser Start an CAIPI sendet, beschreibt das Plugin Externes Tool.';
$string['target'] = 'Was der Block zeigt';
$string['target_help'] = 'Eine CAIPI-Aktivität dieses Kurses: der Kursassistent oder ein veröffentlichter Prompt, wie beim Hinzufügen der Aktivität gewählt.';
